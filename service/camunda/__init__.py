"""camunda"""
