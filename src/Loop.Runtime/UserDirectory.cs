namespace Loop.Runtime;

using Loop.Domain;
using Loop.Domain.Accounts;

/// <summary>
/// The dashboard's accounts after setup: admins add, change and remove them; anyone may change their
/// own password. Viewers are kept from the rest before any of this runs (<see cref="UserAccess"/>);
/// the checks here are for the calls a viewer is let through with, and for what no one may do:
/// leave the daemon without an admin.
/// </summary>
public sealed class UserDirectory(ILoopStore store, AuthService auth, TimeProvider time)
{
    private const string LastAdmin = "is the last admin: make another account an admin first, or no one could manage the accounts";

    public Task<IReadOnlyList<UserAccount>> ListAsync(CancellationToken cancellationToken) => store.ListUsersAsync(cancellationToken);

    public async Task<UserAccount> CreateAsync(string? username, string? password, string? role, AuthPrincipal caller, CancellationToken cancellationToken)
    {
        EnsureAdmin(caller);
        var name = AuthService.ValidUsername(username);
        var validPassword = AuthService.ValidPassword(password);
        var user = new UserAccount(Ids.New("usr", time), name, AuthService.HashPassword(validPassword, AuthService.Pbkdf2Iterations),
            time.GetUtcNow(), ValidRole(role ?? UserRoles.Viewer));
        if (!await store.CreateUserAsync(user, cancellationToken))
        {
            throw new LoopConflictException($"the username \"{name}\" is taken: choose another");
        }
        return user;
    }

    /// <summary>Changes the fields given: a role (admins only) and a password (admins, or the user
    /// themself). A password set here ends the user's other sessions.</summary>
    public async Task<UserAccount> ChangeAsync(string userId, string? role, string? password, AuthPrincipal caller, CancellationToken cancellationToken)
    {
        var own = caller.UserId == userId;
        if (!own || role is not null)
        {
            EnsureAdmin(caller);
        }
        if (role is null && password is null)
        {
            throw new LoopValidationException("role", "give a role, a password or both");
        }
        var newRole = role is null ? (UserRole?)null : ValidRole(role);
        var hash = password is null ? null : AuthService.HashPassword(AuthService.ValidPassword(password), AuthService.Pbkdf2Iterations);
        var user = await store.GetUserAsync(userId, cancellationToken) ?? throw new LoopNotFoundException($"no user {userId}");
        if (newRole is { } changed)
        {
            switch (await store.SetUserRoleAsync(userId, changed, cancellationToken))
            {
                case UserChange.LastAdmin:
                    throw new LoopConflictException($"{user.Username} {LastAdmin}");
                case UserChange.NotFound:
                    throw new LoopNotFoundException($"no user {userId}");
            }
        }
        if (hash is not null && !await store.SetUserPasswordAsync(userId, hash, own ? caller.SessionTokenHash : null, cancellationToken))
        {
            throw new LoopNotFoundException($"no user {userId}");
        }
        auth.ForgetValidated();
        return await store.GetUserAsync(userId, cancellationToken) ?? throw new LoopNotFoundException($"no user {userId}");
    }

    /// <summary>Deletes an account, ending its sessions and revoking its API tokens at once.</summary>
    public async Task DeleteAsync(string userId, AuthPrincipal caller, CancellationToken cancellationToken)
    {
        EnsureAdmin(caller);
        var user = await store.GetUserAsync(userId, cancellationToken) ?? throw new LoopNotFoundException($"no user {userId}");
        switch (await store.DeleteUserAsync(userId, cancellationToken))
        {
            case UserChange.LastAdmin:
                throw new LoopConflictException($"{user.Username} {LastAdmin}");
            case UserChange.NotFound:
                throw new LoopNotFoundException($"no user {userId}");
        }
        auth.ForgetValidated();
    }

    private static UserRole ValidRole(string role) =>
        UserRoles.Parse(role) ?? throw new LoopValidationException("role", $"the role must be \"{UserRoles.Admin}\" or \"{UserRoles.Viewer}\"");

    private static void EnsureAdmin(AuthPrincipal caller)
    {
        if (caller.Role != UserRole.Admin)
        {
            throw new LoopForbiddenException(UserAccess.ViewerRefusal);
        }
    }
}
