// Package compat holds the end-to-end tests in which the real RocketMQ Go
// client (github.com/apache/rocketmq-client-go/v2 v2.1.2) runs unchanged
// against an in-process mqd nameserver and broker. The client is the judge
// of wire compatibility; nothing here is imported by the product.
package compat
