module github.com/assoliment/assoliment/services/simulator

go 1.26

require github.com/assoliment/assoliment/services/contract v0.0.0

replace github.com/assoliment/assoliment/services/contract => ../contract
