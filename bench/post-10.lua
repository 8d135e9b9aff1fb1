-- wrk script: POST "10" (e.g. to testkit nest: a chain of ten calls).
wrk.method = "POST"
wrk.body = "10"
