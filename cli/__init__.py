"""mem's command line: parses, calls one engine function, renders."""
