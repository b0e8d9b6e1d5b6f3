namespace Loop.Api;

using Loop.Domain.Accounts;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>Accounts, login sessions and API tokens: thin calls into <see cref="AuthService"/>.</summary>
public static class AuthApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var auth = app.ServiceProvider.GetRequiredService<AuthService>();
        var json = AuthJsonContext.Default;

        app.MapGet("/api/auth/status", async (HttpContext http, CancellationToken ct) =>
        {
            var principal = ApiCallers.PrincipalOf(http);
            var authenticated = ApiCallers.IsAuthenticated(http);
            var role = ApiCallers.IsUser(http) && principal is not null ? UserRoles.Name(principal.Role) : null;
            return Results.Json(new AuthStatusDto(await auth.IsSetupRequiredAsync(ct), authenticated, principal?.Username, principal?.UserId, role), json.AuthStatusDto);
        })
            .WithName("GetAuthStatus")
            .WithSummary("Whether setup is needed, whether this call is logged in, and as whom (username, user_id, role)")
            .Produces<AuthStatusDto>();

        app.MapPost("/api/auth/setup", async (HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.SetupRequest, ct);
            var user = await auth.SetupAsync(body.Username, body.Password, body.SetupCode, ct);
            return Results.Json(UserDto.From(user), json.UserDto, statusCode: StatusCodes.Status201Created);
        })
            .WithName("SetUp")
            .WithSummary("Create the admin account with the setup code loop serve printed (first run only)")
            .JsonBody<SetupRequest>()
            .Produces<UserDto>(StatusCodes.Status201Created);

        app.MapPost("/api/auth/login", async (HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.CredentialsRequest, ct);
            ApiCallers.RefuseLoginOnContainerEndpoint(request.HttpContext, auth, body.Username);
            var (token, user, expiresAt) = await auth.LoginAsync(body.Username, body.Password, ct);
            request.HttpContext.Response.Cookies.Append(ApiCallers.SessionCookie, token, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = request.IsHttps,
                Path = "/",
                Expires = expiresAt,
            });
            return Results.Json(new LoginDto(token, user.Username, UserRoles.Name(user.Role), expiresAt), json.LoginDto);
        })
            .WithName("LogIn")
            .WithSummary("Log in: sets the session cookie and returns its token")
            .JsonBody<CredentialsRequest>()
            .Produces<LoginDto>();

        app.MapPost("/api/auth/logout", async (HttpContext http, CancellationToken ct) =>
        {
            if (ApiCallers.PrincipalOf(http) is { } principal)
            {
                await auth.LogoutAsync(principal, ct);
            }
            http.Response.Cookies.Delete(ApiCallers.SessionCookie, new CookieOptions { Path = "/" });
            return Results.NoContent();
        })
            .WithName("LogOut")
            .WithSummary("End this session")
            .Produces(StatusCodes.Status204NoContent);

        app.MapGet("/api/auth/tokens", async (HttpContext http, CancellationToken ct) =>
        {
            ApiCallers.Of(http).EnsureUser("manage API tokens");
            return Results.Json((await auth.ListTokensAsync(ct)).Select(ApiTokenDto.From).ToList(), json.ListApiTokenDto);
        })
            .WithName("ListApiTokens")
            .WithSummary("The API tokens (never the tokens themselves)")
            .Produces<List<ApiTokenDto>>();

        app.MapPost("/api/auth/tokens", async (HttpRequest request, CancellationToken ct) =>
        {
            ApiCallers.Of(request.HttpContext).EnsureUser("manage API tokens");
            var body = await ApiErrors.ReadBodyAsync(request, json.CreateTokenRequest, ct);
            var (info, token) = await auth.CreateTokenAsync(body.Name, ApiCallers.PrincipalOf(request.HttpContext)!, ct);
            return Results.Json(new NewApiTokenDto(info.Id, info.Name, info.CreatedAt, token), json.NewApiTokenDto, statusCode: StatusCodes.Status201Created);
        })
            .WithName("CreateApiToken")
            .WithSummary("Create an API token for scripts: the answer is the only time it is shown")
            .JsonBody<CreateTokenRequest>()
            .Produces<NewApiTokenDto>(StatusCodes.Status201Created);

        app.MapDelete("/api/auth/tokens/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            ApiCallers.Of(http).EnsureUser("manage API tokens");
            await auth.RevokeTokenAsync(id, ApiCallers.PrincipalOf(http)!, ct);
            return Results.NoContent();
        })
            .WithName("RevokeApiToken")
            .WithSummary("Revoke an API token")
            .Produces(StatusCodes.Status204NoContent);
    }
}
