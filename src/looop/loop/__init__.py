"""looop.loop"""
