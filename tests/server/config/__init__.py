"""Configuration lexer and parser tests.

A package because tests/protocol has a test_parser.py too.
"""
