namespace Loop.Domain.Tests;

using Loop.Domain.Accounts;

public sealed class UserAccessTests
{
    private const string Me = "usr_me";

    [Theory]
    [InlineData("GET", "/api/channels")]
    [InlineData("GET", "/api/events")]
    [InlineData("HEAD", "/api/runs/run_1")]
    [InlineData("GET", "/api/users")]
    [InlineData("POST", "/api/auth/login")]
    [InlineData("POST", "/api/auth/logout")]
    [InlineData("POST", "/api/auth/tokens")]
    [InlineData("DELETE", "/api/auth/tokens/tok_1")]
    [InlineData("PATCH", "/api/users/usr_me")]
    [InlineData("PATCH", "/API/Users/USR_ME/")]
    [InlineData("POST", "/")]
    [InlineData("GET", "/orleans")]
    public void A_viewer_may_read_log_in_and_out_keep_their_own_tokens_and_change_their_own_password(string method, string path) =>
        Assert.Null(UserAccess.Refusal(UserRole.Viewer, method, path, Me));

    [Theory]
    [InlineData("POST", "/api/channels")]
    [InlineData("PATCH", "/api/channels/ch_1")]
    [InlineData("PUT", "/api/channels/ch_1")]
    [InlineData("DELETE", "/api/channels/ch_1")]
    [InlineData("POST", "/api/channels/ch_1/messages")]
    [InlineData("PUT", "/api/channels/ch_1/budget")]
    [InlineData("DELETE", "/api/tasks/tsk_1")]
    [InlineData("post", "/API/runs/run_1/cancel")]
    [InlineData("POST", "//api//tasks")]
    [InlineData("POST", "/api/users")]
    [InlineData("PATCH", "/api/users/usr_other")]
    [InlineData("DELETE", "/api/users/usr_me")]
    [InlineData("PUT", "/api/auth/tokens")]
    [InlineData("POST", "/api/something/new")]
    // A GET that mints a channel token, which could post in that channel.
    [InlineData("GET", "/api/channels/ch_1/token")]
    public void A_viewer_may_change_nothing_else_nor_mint_a_channel_token(string method, string path) =>
        Assert.Equal(UserAccess.ViewerRefusal, UserAccess.Refusal(UserRole.Viewer, method, path, Me));

    [Fact]
    public void Without_an_account_of_its_own_a_viewer_may_change_no_account()
    {
        Assert.NotNull(UserAccess.Refusal(UserRole.Viewer, "PATCH", "/api/users/usr_me", null));
    }

    [Theory]
    [InlineData("POST", "/api/channels")]
    [InlineData("DELETE", "/api/users/usr_other")]
    [InlineData("GET", "/api/channels/ch_1/token")]
    public void An_admin_may_do_everything(string method, string path) =>
        Assert.Null(UserAccess.Refusal(UserRole.Admin, method, path, Me));

    [Fact]
    public void Role_names_read_back_and_nothing_else_is_a_role()
    {
        Assert.Equal(UserRole.Viewer, UserRoles.Parse(" Viewer "));
        Assert.Equal(UserRole.Admin, UserRoles.Parse(UserRoles.Name(UserRole.Admin)));
        Assert.Null(UserRoles.Parse("owner"));
        Assert.Null(UserRoles.Parse(null));
    }
}
