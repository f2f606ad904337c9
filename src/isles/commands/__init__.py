"""Sub-commands of the `isles` command line, one module per group."""
