"""looop.seed"""
