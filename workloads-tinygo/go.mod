module wnb/workloads

go 1.21
