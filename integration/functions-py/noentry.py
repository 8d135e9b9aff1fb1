# Defines no entry.
X = 1
