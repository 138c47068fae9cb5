module github.com/stowage/stowage

go 1.26
