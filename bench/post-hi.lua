-- wrk script: POST "hi" to the invoke endpoint given on the command line.
wrk.method = "POST"
wrk.body = "hi"
