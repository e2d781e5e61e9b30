"""looop.sessions"""
