"""Trust: secrets that production refuses, sign-in and portal throttling."""
