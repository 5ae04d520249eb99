"""The demo in one room: the models it runs, their preparation, the run over DDS and its summary; the
`demo` command itself is demo/command.py (`python -m splitcomp_tools.demo` starts it)."""
