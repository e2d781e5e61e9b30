"""looop.act"""
