"""The database: engines (`engine`), the models' base and column types (`base`), the
request's transaction and its named exits (`transactions`), the behaviour of a failing
server (`guard`, `errors`), keyset pagination (`keyset`, its cursors' wire form in
`cursors`) and the repositories' shared shape (`repository`). All SQL outside this package
lives in the domains' repositories."""
