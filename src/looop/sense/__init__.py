"""looop.sense"""
