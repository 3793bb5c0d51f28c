"""The programs supervisord runs in the pod beside haproxy and the middleware: `engine_wrapper` (the `engine`
program: SGLang under a drain-first stop), `failfast` (the event listener that takes the pod down when the engine
cannot be kept running), and `stdio` (stdout/stderr supervisord can re-open under any uid); and `supervise`, which
runs supervisord itself (stock, but for a first poll that does not wait a second before starting them)."""
