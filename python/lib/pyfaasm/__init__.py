"""Faasm's Python API (`pyfaasm`), on fwasm's host interface."""
