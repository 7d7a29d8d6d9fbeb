// Package platform holds the runtime plumbing shared by the Assoliment
// services: configuration from flags and environment, ClickHouse and NATS
// connections, the HTTP server, logging and the test environment. Business
// rules live in the services, not here.
package platform
