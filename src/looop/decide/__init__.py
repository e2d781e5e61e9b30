"""looop.decide"""
