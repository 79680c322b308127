"""The history store: every workflow, task attempt and transition, in a database.

`Recorder` (`podium history-store`) is a processor on the runtime's loop: it
reads the lifecycle, command and outcome topics of both modes and writes each
consumed batch in one transaction before its offsets are committed. `Database`
holds the tables (`schema`), the migrations and the reads; `views` turns rows
into what the CLI (and later the HTTP API) shows.
"""
