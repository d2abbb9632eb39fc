package pubsubgrpc

import (
	"context"
	"errors"
	"path"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/duct-dev/duct"
)

// permissions says what each method needs, as the REST API's routes do:
// managing topics and subscriptions is deploying, publishing and consuming
// is invoking, the rest is reading. A method not listed needs admin.
var permissions = map[string]duct.Permission{
	"CreateTopic": duct.PermDeploy, "UpdateTopic": duct.PermDeploy, "DeleteTopic": duct.PermDeploy,
	"DetachSubscription": duct.PermDeploy, "CreateSubscription": duct.PermDeploy,
	"UpdateSubscription": duct.PermDeploy, "DeleteSubscription": duct.PermDeploy,
	"ModifyPushConfig": duct.PermDeploy, "CreateSnapshot": duct.PermDeploy,
	"UpdateSnapshot": duct.PermDeploy, "DeleteSnapshot": duct.PermDeploy,

	"Publish": duct.PermInvoke, "Pull": duct.PermInvoke, "StreamingPull": duct.PermInvoke,
	"Acknowledge": duct.PermInvoke, "ModifyAckDeadline": duct.PermInvoke, "Seek": duct.PermInvoke,

	"GetTopic": duct.PermRead, "ListTopics": duct.PermRead, "ListTopicSubscriptions": duct.PermRead,
	"ListTopicSnapshots": duct.PermRead, "GetSubscription": duct.PermRead,
	"ListSubscriptions": duct.PermRead, "GetSnapshot": duct.PermRead, "ListSnapshots": duct.PermRead,
}

// authorize checks the bearer token of a call to fullMethod
// ("/google.pubsub.v1.Publisher/Publish") when the server wants tokens.
func (s *Server) authorize(ctx context.Context, fullMethod string) error {
	if s.auth == nil {
		return nil
	}
	method := path.Base(fullMethod)
	perm, ok := permissions[method]
	if !ok {
		perm = duct.PermAdmin
	}
	md, _ := metadata.FromIncomingContext(ctx)
	h := md.Get("authorization")
	if len(h) == 0 {
		return status.Error(codes.Unauthenticated, `this server wants a Duct API token: send the metadata "authorization: Bearer TOKEN"`)
	}
	tok, found := strings.CutPrefix(h[0], "Bearer ")
	if !found || len(h) != 1 || strings.TrimSpace(tok) == "" {
		return status.Error(codes.Unauthenticated, `the authorization metadata is not "Bearer TOKEN"`)
	}
	p, err := s.auth.Authenticate(ctx, strings.TrimSpace(tok))
	switch {
	case errors.Is(err, duct.ErrUnauthorized):
		return status.Error(codes.Unauthenticated, err.Error())
	case err != nil:
		s.log.ErrorContext(ctx, "pubsub grpc: checking a token", "method", fullMethod, "err", err)
		return status.Error(codes.Unavailable, "cannot check the token now; try again")
	case !p.Role.Allows(perm):
		return status.Errorf(codes.PermissionDenied, "token %q has role %s, which may not call %s (want role %s)",
			p.Name, p.Role, method, rolesFor(perm))
	}
	return nil
}

// rolesFor lists the roles that have perm: "deploy or admin".
func rolesFor(perm duct.Permission) string {
	var rs []string
	for _, r := range duct.Roles {
		if r.Allows(perm) {
			rs = append(rs, string(r))
		}
	}
	if len(rs) < 2 {
		return strings.Join(rs, "")
	}
	return strings.Join(rs[:len(rs)-1], ", ") + " or " + rs[len(rs)-1]
}
