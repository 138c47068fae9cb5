// Package oss is the stowage backend for Alibaba Cloud Object Storage
// Service (OSS), on github.com/aliyun/aliyun-oss-go-sdk.
package oss
