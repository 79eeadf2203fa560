"""Realtime: one LISTEN connection per process, a dispatcher, and the streams it feeds."""
