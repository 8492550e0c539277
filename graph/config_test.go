package graph_test

import (
	"testing"

	"lasuite.fr/people/store/storetest"
)

func TestConfigIsPublic(t *testing.T) {
	a := newAPI(t, storetest.Open(t), allFeatures)
	var out struct {
		Config struct {
			Languages []struct{ Code string }
			Features  struct{ TeamsCreate bool }
			Release   string
		}
	}
	a.mustDo(nil, `{ config { languages { code } features { teamsCreate } release } }`, nil, &out)
	if len(out.Config.Languages) != 2 || out.Config.Languages[0].Code != "en-us" || !out.Config.Features.TeamsCreate || out.Config.Release != "test" {
		t.Errorf("config = %+v", out.Config)
	}
}

func TestMeNeedsAuthentication(t *testing.T) {
	a := newAPI(t, storetest.Open(t), allFeatures)
	if r := a.do(nil, `{ me { id } }`, nil, nil); r.Code() != "UNAUTHENTICATED" {
		t.Errorf("me without principal: code %q, want UNAUTHENTICATED (%+v)", r.Code(), r.Errors)
	}
}
