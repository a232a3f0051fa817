"""The matrix as data: its file (definition), its cells, and the words of every result
(vocabulary)."""
