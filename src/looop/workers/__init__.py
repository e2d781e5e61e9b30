"""looop.workers"""
