// Command etcd is etcd's own server (etcdmain), which `go install` refuses to
// build from its module because of the module's replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
