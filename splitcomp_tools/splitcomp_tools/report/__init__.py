"""Library results made readable for people: text tables (via cli.format_table), JSON, PNG plots, summaries.

Pure formatting: data in, str or bytes out. The commands print or write what these return.
"""
