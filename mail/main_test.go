package mail

import (
	"testing"

	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }
