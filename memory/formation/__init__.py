"""formation"""
