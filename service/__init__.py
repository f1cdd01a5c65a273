"""casevars: the Camunda 7 REST API for case-instance variables, with binary values in S3."""
