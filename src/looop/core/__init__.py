"""looop.core"""
