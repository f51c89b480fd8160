"""The database: engines (`engine`), the models' base and column types (`base`), the
request's transaction and its named exits (`transactions`), the behaviour of a failing
server (`guard`, `errors`), keyset pagination (`keyset`, its cursors' wire form in
`cursors`), the repositories' shared shape (`repository`), and the driver-level paths of
the hot reads (`reads`) and one-call writes (`calls`) on asyncpg's own pools (`drivers`),
and the reads read replicas may serve (`replicas`). All SQL outside this package lives in
the domains' repositories."""
