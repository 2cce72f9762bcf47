-- wrk script for POST /v1/bingo/check (bench/http.sh): the README's example
-- request, a card that has won a row and a column. The key header comes
-- from wrk's -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}'
