"""looop.tui"""
