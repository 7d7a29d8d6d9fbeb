module github.com/assoliment/assoliment/services/kpictl

go 1.26

require github.com/assoliment/assoliment/services/contract v0.0.0

replace github.com/assoliment/assoliment/services/contract => ../contract
