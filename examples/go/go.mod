module ddstream.example/stream

go 1.19
