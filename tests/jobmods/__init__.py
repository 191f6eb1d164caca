"""Job modules the tests load through JOBAPP_JOBS: good ones from outside jobapp/ and broken ones."""
