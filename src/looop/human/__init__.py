"""looop.human"""
