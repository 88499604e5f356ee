"""Core REST API: projects and members, prompts, candidates, comparison tasks, judgments and API tokens.

Token scopes (a session-authenticated web user is not limited by scopes, only by role):

==========================================  ===========================================
request                                     a token needs one of
==========================================  ===========================================
GET projects, prompts, candidates, tasks    ``annotate``, ``export`` or ``train``
GET judgments                               ``annotate``, ``export`` or ``train``
POST judgments                              ``annotate``
write projects, members, prompts,           ``train``
candidates, tasks
tokens (list, create, revoke)               any scope; a new token's scopes must be a
                                            subset of the calling token's scopes
==========================================  ===========================================

Roles apply on top: within a project a user acts with the higher of their global role and their membership
role. Annotators read the project and judge; reviewers also see every judgment, model names and gold
answers; engineers (and admins) change the project, its members and content; creating a project needs the
global engineer or admin role. A project the user cannot see answers 404, never 403. See ``docs/api.md``.
"""

from annotation.api.core import schema  # noqa: E402,F401  (registers the token auth OpenAPI extension)
