"""Live task events: written by the mutation's transaction with NOTIFY, fanned out to every
server process through one LISTEN connection each."""
