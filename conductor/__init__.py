"""The conductor: hosts the workflow state machine in orchestration mode."""
