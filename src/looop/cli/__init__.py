"""looop.cli"""
