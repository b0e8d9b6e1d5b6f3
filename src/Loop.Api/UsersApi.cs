namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The dashboard's accounts: thin calls into <see cref="UserDirectory"/>. Users only; what a
/// viewer may not change was refused before (<see cref="ApiCallers.AdmitAsync"/>).</summary>
public static class UsersApi
{
    private const string What = "manage accounts";

    public static void Map(IEndpointRouteBuilder app)
    {
        var users = app.ServiceProvider.GetRequiredService<UserDirectory>();
        var json = AuthJsonContext.Default;

        app.MapGet("/api/users", async (HttpContext http, CancellationToken ct) =>
        {
            ApiCallers.Of(http).EnsureUser("list accounts");
            return Results.Json((await users.ListAsync(ct)).Select(UserDto.From).ToList(), json.ListUserDto);
        })
            .WithName("ListUsers")
            .WithSummary("The dashboard's accounts with their roles (admin or viewer), oldest first")
            .Produces<List<UserDto>>();

        app.MapPost("/api/users", async (HttpRequest request, CancellationToken ct) =>
        {
            var caller = UserOf(request.HttpContext);
            var body = await ApiErrors.ReadBodyAsync(request, json.CreateUserRequest, ct);
            var user = await users.CreateAsync(body.Username, body.Password, body.Role, caller, ct);
            return Results.Json(UserDto.From(user), json.UserDto, statusCode: StatusCodes.Status201Created);
        })
            .WithName("CreateUser")
            .WithSummary("Add an account (admins only): {\"username\", \"password\", \"role\"}, role admin or viewer (the default)")
            .JsonBody<CreateUserRequest>()
            .Produces<UserDto>(StatusCodes.Status201Created);

        app.MapMethods("/api/users/{id}", ["PATCH"], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var caller = UserOf(request.HttpContext);
            var body = await ApiErrors.ReadBodyAsync(request, json.ChangeUserRequest, ct);
            return Results.Json(UserDto.From(await users.ChangeAsync(id, body.Role, body.Password, caller, ct)), json.UserDto);
        })
            .WithName("ChangeUser")
            .WithSummary("Change an account's role or password (admins; anyone their own password, which ends their other sessions)")
            .JsonBody<ChangeUserRequest>()
            .Produces<UserDto>();

        app.MapDelete("/api/users/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            await users.DeleteAsync(id, UserOf(http), ct);
            return Results.NoContent();
        })
            .WithName("DeleteUser")
            .WithSummary("Remove an account (admins only): ends its sessions and revokes its API tokens; never the last admin")
            .Produces(StatusCodes.Status204NoContent);
    }

    private static AuthPrincipal UserOf(HttpContext http)
    {
        ApiCallers.Of(http).EnsureUser(What);
        return ApiCallers.PrincipalOf(http)!;
    }
}
