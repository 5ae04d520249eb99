"""Library results for people: text tables (through cli.format_table), summaries and PNG plots; data in, str or bytes out."""
