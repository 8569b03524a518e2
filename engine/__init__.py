"""deferral.engine"""
