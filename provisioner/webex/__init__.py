"""webex"""
