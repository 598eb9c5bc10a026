package ident_test

import (
	"fmt"

	"github.com/netloom/netloom/internal/ident"
)

func ExamplePortName() {
	link := ident.LinkName("R2:eth1", "R1:eth1")
	fmt.Println(link, ident.PortName("lab-1", link), ident.VNI("lab-1", link))
	// Output: R1:eth1-R2:eth1 vxlan-83debe08 4413936
}

func ExampleVNI() {
	lab := "11111111-2222-3333-4444-555555555555"
	link := ident.LinkName("ceos_1:eth3", "ceos_2:eth1")
	fmt.Println(link, ident.PortName(lab, link), ident.VNI(lab, link))
	// Output: ceos_1:eth3-ceos_2:eth1 vxlan-c98dda9a 5517954
}
