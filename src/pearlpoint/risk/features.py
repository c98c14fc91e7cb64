"""Cheap, explainable features that catch what sentence embeddings miss.

Two jobs:
1. ``decode_views``: undo common obfuscations (base64, hex, rot13, reversed text, leetspeak,
   character splitting, ASCII-art boxes, doubled characters, tag separators, radical-split Chinese
   characters, acrostic payloads) so the harm heads read the hidden request, not the wrapper.
2. ``feature_vector``: a fixed-length vector of attack-form and distress cues (role-play templates,
   instruction overrides, code-completion wrappers, refusal suppression, Chinese riddle/acrostic/
   character-split games, distress language), each with a human-readable :class:`RiskSignal`.

Everything is regex and string work: it runs in well under a millisecond on a normal prompt and stays
linear on 100k-character inputs.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from pearlpoint.risk.schema import RiskSignal

_COMMON_EN = frozenset(
    "the be to of and a in that have i it for not on with he as you do at this but his by from they we say "
    "her she or an will my one all would there their what so up out if about who get which go me when make "
    "can like time no just him know take people into year your good some could them see other than then now "
    "look only come its over think also back after use two how our work first well way even new want because "
    "any these give day most us is are was were how make build write explain tell steps step instructions "
    "detailed guide someone".split())

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])([A-Za-z0-9+/]{16,}={0,2})(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9a-fA-F])((?:[0-9a-fA-F]{2}[\s:]?){10,})(?![0-9a-fA-F])")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_SPLIT_LATIN = re.compile(r"(?:\b[A-Za-z]\b[\s.\-_*|/+,]{1,3}){4,}\b[A-Za-z]\b")
_SPLIT_CJK = re.compile(r"(?:[\u4e00-\u9fff][^\w\u4e00-\u9fff\n]{1,8}){4,}[\u4e00-\u9fff]")
_FULLWIDTH_ALNUM = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]{2,}")
_RADICAL_SPLIT = re.compile(r"([\u4e00-\u9fff])[（(][\u2e80-\u2fdf\u31c0-\u31ef\u3400-\u9fff丿丨丶乁㇆\s]{1,8}[）)]")
_TAG_SEP = re.compile(r"<(\w+)>[^<>]{0,12}</\1>")
_LEET_TOKEN = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*[0-9@$])[A-Za-z0-9@$]{2,}\b")
_LEET_MAP = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                           "8": "b", "9": "g"})
_ACROSTIC_ZH = re.compile(r"第\s*[0-9一二三四五六七八九十]+\s*[个句行首].{0,8}?(?:字|个字)\s*(?:是|为)\s*[:：]?\s*[\"“'‘]?([\u4e00-\u9fff])")
_DOUBLED = re.compile(r"([\u4e00-\u9fff])\1")


def _wordiness(text: str) -> float:
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    if not words:
        return 0.0
    return sum(w in _COMMON_EN for w in words) / len(words)


def _printable_ratio(s: str) -> float:
    if not s:
        return 0.0
    ok = sum(ch.isprintable() or ch in "\n\t" for ch in s)
    return ok / len(s)


def _try_b64(token: str) -> str | None:
    if len(token) < 16 or token.isalpha() and token.islower():
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
        out = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if len(out) < 6 or _printable_ratio(out) < 0.95:
        return None
    if _wordiness(out) < 0.15 and not _CJK.search(out):
        return None
    return out


def _try_hex(token: str) -> str | None:
    digits = re.sub(r"[\s:]", "", token)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        out = bytes.fromhex(digits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if len(out) < 5 or _printable_ratio(out) < 0.95:
        return None
    return out


def normalise(text: str) -> str:
    """NFKC (full-width letters become ASCII) and zero-width characters removed."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))


@dataclass
class DecodedViews:
    """Alternative readings of a prompt, each with the obfuscation that produced it."""

    views: list[tuple[str, str]] = field(default_factory=list)  # (method, text)

    def add(self, method: str, text: str, original: str) -> None:
        text = text.strip()
        if len(text) >= 4 and text != original.strip() and all(text != t for _, t in self.views):
            self.views.append((method, text))


MAX_DECODED_VIEWS = 6


def decode_views(text: str) -> DecodedViews:
    """Undo obfuscations; returns only views that differ from the input (at most ``MAX_DECODED_VIEWS``)."""
    out = DecodedViews()
    norm = normalise(text)
    if _ZERO_WIDTH.search(text[:20000]) or _FULLWIDTH_ALNUM.search(text[:20000]):
        out.add("unicode_normalised", norm, text)
    sample = norm[:20000]
    for m in _B64.finditer(sample):
        dec = _try_b64(m.group(1))
        if dec:
            out.add("base64", sample.replace(m.group(1), " " + dec + " "), text)
            break
    for m in _HEX.finditer(sample):
        dec = _try_hex(m.group(1))
        if dec:
            out.add("hex", sample.replace(m.group(1), " " + dec + " "), text)
            break
    latin = _LATIN_WORD.findall(sample)
    if len(latin) >= 3:
        base_w = _wordiness(sample)
        rot = codecs.decode(sample, "rot13")
        if _wordiness(rot) > max(0.3, base_w + 0.2):
            out.add("rot13", rot, text)
        rev = sample[::-1]
        if _wordiness(rev) > max(0.3, base_w + 0.2):
            out.add("reversed", rev, text)
    leet_tokens = _LEET_TOKEN.findall(sample)
    if len(leet_tokens) >= 2:
        de = _LEET_TOKEN.sub(lambda m: m.group(0).translate(_LEET_MAP), sample)
        if _wordiness(de) > _wordiness(sample) + 0.1:
            out.add("leetspeak", de, text)
    if _SPLIT_LATIN.search(sample):
        out.add("char_split", _SPLIT_LATIN.sub(lambda m: re.sub(r"[\s.\-_*|/+,]", "", m.group(0)), sample), text)
    if _SPLIT_CJK.search(sample):
        out.add("char_split", _SPLIT_CJK.sub(lambda m: re.sub(r"[^\u4e00-\u9fff]", "", m.group(0)), sample), text)
    if len(_RADICAL_SPLIT.findall(sample)) >= 4:
        out.add("radical_split", _RADICAL_SPLIT.sub(r"\1", sample), text)
    if len(_TAG_SEP.findall(sample)) >= 4:
        out.add("tag_separator", _TAG_SEP.sub("", sample), text)
    doubled = _DOUBLED.findall(sample)
    cjk_n = len(_CJK.findall(sample))
    if cjk_n and len(doubled) * 2 >= 0.3 * cjk_n and len(doubled) >= 6:
        out.add("doubled_chars", re.sub(r"([\u4e00-\u9fff])\1", r"\1", sample), text)
    acro = _ACROSTIC_ZH.findall(sample)
    if len(acro) >= 4:
        out.add("acrostic", "".join(acro), text)
    return DecodedViews(out.views[:MAX_DECODED_VIEWS])


# --- lexical cues: (name, weight in the vector, pattern) ------------------------------------------
def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts), re.IGNORECASE)


_ROLEPLAY = _rx(r"\bpretend (?:to be|you(?:'re| are))", r"\bact as\b", r"\byou are now\b", r"\bfrom now on,? you\b",
                r"\brole[- ]?play", r"\bstay in character\b", r"\bDAN\b", r"\bdo anything now\b",
                r"\bdeveloper mode\b", r"\bjailbr[eo]a?k", r"\bunfiltered\b", r"\buncensored\b",
                r"\bno (?:ethical|moral) (?:guidelines|restrictions|limits)", r"without (?:any )?(?:ethical|moral|legal) (?:guidelines|restrictions|constraints|considerations)",
                r"\bevil (?:ai|assistant|twin)\b", r"\bAIM\b", r"扮演", r"你现在是", r"假装", r"变身", r"取代",
                r"不受(?:任何)?(?:限制|约束|拘束)", r"开发者模式", r"越狱", r"没有(?:任何)?(?:道德|限制|约束)",
                r"不(?:需要|必)?遵守(?:任何)?(?:道德|规则|法律)", r"不考虑(?:任何)?(?:道德|法律)")
_OVERRIDE = _rx(r"\bignore (?:all |any |the |your )?(?:previous|prior|above|earlier|preceding)?\s*(?:instructions|prompts|rules|guidelines|text)",
                r"\bignore the above\b", r"\bdisregard (?:all |any |the |your )?(?:previous|prior|above)",
                r"\bforget (?:all |your )?(?:previous |prior )?(?:instructions|rules)", r"\boverride\b.{0,20}\b(?:safety|rules)",
                r"\bsystem prompt\b", r"\boutput R0\b", r"忽略(?:之前|以上|上面|前面|所有)", r"无视(?:之前|以上|所有)",
                r"忽略安全")
_REFUSAL_SUPPRESSION = _rx(r"\bdo(?:n't| not) (?:refuse|apologi[sz]e|say (?:sorry|no|you can't))", r"\bnever refuse\b",
                           r"\bstart (?:your|the) (?:response|answer|reply) with\b", r"\bbegin (?:your|the) (?:response|answer|reply) with\b",
                           r"\bsure,? here is\b", r"\bno (?:warnings|disclaimers)\b", r"without (?:any )?(?:warnings|disclaimers)",
                           r"不要(?:回复|说)?(?:对不起|抱歉)", r"不(?:能|准|得|许)(?:拒绝|道歉)", r"不(?:准|允许)有任何(?:善意)?(?:的)?提醒",
                           r"以[\"“「]?[^\"”」]{1,8}[\"”」]?(?:为|作为)?开头", r"必须回答")
_FICTION = _rx(r"\bhypothetical(?:ly)?\b", r"\bin a (?:story|novel|screenplay|movie|game)\b", r"\bfictional\b",
               r"\bfor a (?:novel|story|book|screenplay)\b", r"\bimagine (?:that|a world)\b", r"\bthought experiment\b",
               r"假设", r"小说", r"剧本", r"情景剧", r"虚构", r"故事")
_CODE = _rx(r"```", r"\bcomplete (?:the|this) (?:code|function|script)\b", r"\bfill in (?:the|this)\b",
            r"\bdef \w+\(", r"\bfunction \w*\(", r"#include\b", r"\bimport \w+", r"<script>", r"补全(?:代码|函数)",
            r"\bprint\(", r"\bTODO\b", r"\bclass \w+[:(]")
_ENCODING_TALK = _rx(r"\bbase ?64\b", r"\bdecode\b", r"\bdecrypt\b", r"\bcipher\b", r"\brot ?13\b", r"\bhex(?:adecimal)?\b",
                     r"\bmorse\b", r"\breverse(?:d)? (?:text|order|the letters)\b", r"解码", r"编码", r"密码本", r"摩斯", r"倒序")
_WORD_GAME = _rx(r"\blet'?s (?:say|play a game)\b", r"\bfrom now on,? (?:\w+ ){0,3}means\b", r"\b(?:the word|variable) \w+ (?:means|stands for)\b",
                 r"\b[a-z] ?= ?[\"'][^\"']+[\"']\s*[,;\n]", r"\bconcatenate\b", r"\bcombine the (?:words|strings|letters)\b",
                 r"说反话", r"反驳", r"游戏", r"代替", r"拼起来", r"组成的问题", r"连起来")
_ZH_ACROSTIC = _rx(r"藏头", r"每(?:一)?句(?:的)?第一个字", r"首字", r"\bacrostic\b", r"first letters? (?:of each|spell)")
_ZH_RIDDLE = _rx(r"灯谜", r"字谜", r"谜语", r"谜面", r"谜底", r"打一(?:字|物)", r"\briddle\b")
_ZH_CHAR_SPLIT = _rx(r"拆字", r"偏旁", r"部首", r"左边是", r"右边是", r"上面是", r"下面是", r"合起来")
_MULTI_TURN = re.compile(r"(?m)^\s*(?:\d+[.、:：)]|Q\d*[:：]|User[:：]|用户[:：])")
_IMPERATIVE_EN = re.compile(
    r"^\s*(?:please\s+)?(?:write|give|tell|create|make|generate|list|explain|describe|show|provide|design|develop|draft|"
    r"compose|build|help|teach|find|suggest|outline|produce|translate|summari[sz]e|convince|persuade|plan|devise|"
    r"come up|compile|craft|detail|recommend|offer|code|program|modify|edit|rewrite|convert|publish)\b", re.IGNORECASE)
_IMPERATIVE_ZH = re.compile(r"^\s*(?:请|帮我|帮忙|给我|写|编写|制定|创建|生成|列出|提供|设计|开发|起草|撰写|教我?|告诉我|描述|说明|解释|推荐|发布|创作|制作)")
_QUESTION = re.compile(r"[?？]|^\s*(?:how|what|why|when|where|who|which|whom|whose|is|are|can|could|should|would|do|does|did|will|may|might|shall)\b|"
                       r"(?:吗|呢|么|怎么|如何|为什么|为何|哪|什么|多少|是否|能否|可否)", re.IGNORECASE)
_OPINION = _rx(r"\bi (?:think|believe|feel|reckon)\b", r"\b(?:all|most) \w+ (?:are|is)\b", r"\bshould be (?:banned|killed|deported)\b",
               r"\bare (?:inferior|lazy|stupid|criminals|animals)\b", r"我(?:觉得|认为)", r"都是", r"就该")

_DISTRESS_STRONG = _rx(r"\bkill(?:ing)? myself\b", r"\bend (?:my|it) (?:life|all)\b", r"\bsuicid", r"\bwant to die\b",
                       r"\bdon'?t want to (?:live|be alive|exist|wake up)\b", r"\bbetter off without me\b", r"\bno way out\b",
                       r"\b(?:no|any|the) point (?:in|of) (?:living|going on|being alive|being here)\b", r"\bnot worth living\b",
                       r"\btake my (?:own )?life\b", r"\bgive up on (?:life|living|everything)\b",
                       r"\bhurt(?:ing)? myself\b", r"\bcut(?:ting)? (?:myself|again)\b", r"\bself[- ]harm", r"\boverdose\b.{0,30}\bmyself\b",
                       r"\bgoodbye (?:letter|note)s?\b", r"\bif i (?:was|were) gone\b", r"\bdisappear(?:ed)?\b.{0,20}\b(?:forever|for good)\b", r"\bnever wake up\b", r"\bdon'?t trust myself\b", r"\bmake myself (?:throw up|vomit|sick)\b",
                       r"自杀", r"轻生", r"不想活", r"想死", r"活着没(?:什么)?意(?:思|义)", r"结束(?:自己的)?生命", r"结束一切",
                       r"伤害自己", r"消失了?也不会", r"想消失", r"自残", r"自伤", r"划自己", r"遗书", r"不要再醒", r"没有我会", r"撑不(?:下去|住)", r"不相信自己")
_DISTRESS_WEAK = _rx(r"\bhopeless\b", r"\bworthless\b", r"\bpointless\b", r"\bempty\b", r"\balone\b", r"\blonely\b",
                     r"\bcan'?t (?:do this|cope|go on|take it|stop crying|face)\b", r"\bburden\b", r"\bexhausted\b", r"\bpanic attacks?\b",
                     r"\bdepress", r"\bcrying\b", r"\bhate (?:myself|how i look)\b", r"\bbullied\b", r"\bscared\b", r"\bafraid\b",
                     r"\bnumb\b", r"\bghost\b", r"\bfailure\b", r"\brelapse",
                     r"绝望", r"没意义", r"空空的", r"孤独", r"负担", r"抑郁", r"一直在哭", r"讨厌自己", r"害怕", r"被欺负",
                     r"透明人", r"失败", r"难熬", r"快疯了", r"看不到出路", r"不敢")
# Someone else's danger, told by a worried parent, friend or teacher: the writer needs support and a
# resource as much as a distressed writer does (the cues above are first-person).
_SELVES = r"(?:him|her|them|your)sel(?:f|ves)"
# The people a worried writer speaks of (also what makes a cue "about someone else", see about_someone_else).
_CLOSE_EN = (r"(?:sister|brother|son|daughter|kid|child|teen(?:ager)?|friend|mate|roommate|flatmate|partner|"
             r"girlfriend|boyfriend|husband|wife|mum|mom|mother|dad|father|parent|grand(?:ma|pa|mother|father)|"
             r"cousin|nephew|niece|student|pupil|coworker|colleague|neighbou?r|girl|boy)s?")
_CLOSE_ZH = (r"(?:妹妹|姐姐|弟弟|哥哥|儿子|女儿|孩子|朋友|同学|室友|学生|老公|老婆|丈夫|妻子|男朋友|女朋友|爸|妈|"
             r"外公|外婆|爷爷|奶奶|表妹|表弟|同事|邻居|外甥)")
# Passive ideation reported about someone else ("nobody would notice if she was gone", "he says he's a
# burden", "she's been giving away her things"): conditional or reported speech about *their* absence,
# so an ordinary past-tense story ("nobody noticed she was gone from the party") does not count.
_THEY = r"(?:she|he|they)"
_THEY_GONE = (rf"if {_THEY}(?:(?: (?:was|were|is|are|had|just|really|ever))*(?:['’]s|['’]re)? "
              r"(?:gone(?! (?:from|to|out|on|off|away|shopping|home|for (?!good\b|ever\b)))|dead|died|disappeared|vanished)"
              r"|(?: (?:was|were|is|are))?(?:['’]s|['’]re)? (?:not|no longer) (?:here|around|alive)"
              r"|(?: wasn['’]?t| weren['’]?t| isn['’]?t| aren['’]?t) (?:here|around|alive)"
              r"|(?: had)? never (?:been born|existed))\b")
_IF_THEY_GONE = r"\b" + _THEY_GONE
_SAID = (r"\b(?:say|says|said|saying|think|thinks|thought|feel|feels|felt|tells?|told|telling|writes?|wrote|"
         r"texts?|texted|texting|messag(?:es|ed|ing)|posts?|posted|believes?|believed|convinced|insists?|insisted)\b")
_PASSIVE_OTHER = (
    # nobody would notice / care / miss (her) if she was gone; would anyone even notice if he died
    r"\b(?:nobody|no ?one|no-one|none of (?:us|them))(?: would|['’]d| will|['’]ll)(?: even| really| ever| actually)? "
    r"(?:notice|care|miss|mind)\b[^.?!\n]{0,25}" + _IF_THEY_GONE,
    r"\b(?:would|will) (?:anyone|anybody)(?: even| really| ever| actually)? (?:notice|care|miss|mind)\b[^.?!\n]{0,25}"
    + _IF_THEY_GONE,
    # (she says) everyone would be better off without her / if he was gone
    _SAID + r"[^.?!\n]{0,40}\b(?:everyone|everybody|the (?:world|family)|people|we(?: would|['’]d)? all|all of us|"
    r"(?:her|his|their) (?:family|parents|friends|mum|mom|dad|kids|sister|brother))\b[^.?!\n]{0,20}\bbetter off "
    r"(?:without (?:her|him|them)\b|" + _THEY_GONE + ")",
    # he says he's a burden / feels like a burden / calls herself a burden
    _SAID + rf"(?: (?:me|us|everyone|that))* {_THEY}(?:['’]s|['’]re| is| are| was| were| feels? like| felt like)"
    r"(?: just| only| such| nothing but| always)? (?:an? )?(?:burden|waste of space)\b",
    rf"\b(?:{_THEY}|{_CLOSE_EN})(?: \w+){{0,2}} (?:feels?|felt) like (?:such |just |only |nothing but )?an? "
    r"(?:burden|waste of space)\b",
    r"\bcall(?:s|ed|ing)? (?:herself|himself|themselves|themself) (?:a |such a |just a )?(?:burden|waste of space)\b",
    # (she said she) wanted to disappear / wishes he was dead
    rf"\b(?:{_THEY}|{_CLOSE_EN})(?: \w+){{0,3}} (?:wanted|wishes|wished) to (?:die|not exist|stop existing|(?:not|never) wake up|"
    r"(?:just )?(?:disappear|vanish)(?! (?:into|from|for (?:a|an|the)\b|behind|under|in\b|off\b)))\b",
    rf"\b(?:(?P<wish_who>{_THEY})\b(?: \w+){{0,2}} wish(?:es|ed)? (?P=wish_who)|{_CLOSE_EN}(?: \w+){{0,2}} "
    rf"wish(?:es|ed)? {_THEY}) (?:was|were|had|could)(?: just)? "
    r"(?:dead|never been born|not (?:alive|here|around)|gone|disappear|vanish|die)\b",
    # giving away her things (not to charity or before a move)
    r"\b(?:giv(?:e|es|ing)|gave|given) away (?:(?:all|most) (?:of )?(?:her|his|their) (?!old\b|spare\b|unused\b|extra\b|outgrown\b)|everything|(?:her|his|their) "
    r"(?:(?:most )?(?:prized|favou?rite|treasured|precious|special) |own )?(?:things|stuff|belongings|possessions))"
    r"(?![^.?!\n]{0,40}\b(?:charity|donat\w*|moving|move|garage sale|yard sale|car boot|declutter\w*|thrift|outgrown)\b)",
    # said goodbye as if for the last time
    r"\b(?:said|saying|says|texted|sent|wrote|posted|messaged)\b[^.?!\n]{0,25}\b(?:goodbyes?|farewells?)\b[^.?!\n]{0,25}"
    r"\b(?:forever|for the last time|like (?:it was|it['’]s|it were) the (?:end|last)|as if (?:she|he|they)(?:['’]re| are| were| was)? "
    r"(?:never|not coming back|going away for good|leaving for good))\b",
)
_TA = r"(?:她|他)(?:们)?"
_PASSIVE_OTHER_ZH = (
    # 没人会在意她 / 她不在了也没人会发现
    rf"(?:没(?:有)?人|谁都不|谁也不|不会有人)会?(?:在意|在乎|注意到?|发现|想念|关心|记得|心疼)(?:到)?{_TA}"
    r"(?=$|[，。,.!！?？；;\s]|(?:是否|在不在|的死活|死活|消失|不在|死了|走了|没了|有没有))",
    rf"{_TA}(?:不在了?|消失了?|死了|走了|没了)[^。！？\n]{{0,6}}(?:没(?:有)?人|谁都不|谁也不|不会有人)会?(?:在意|在乎|注意|发现|难过|想念|伤心)",
    # 她说大家没有她会更好 / 她觉得自己是负担
    rf"(?:{_TA}|{_CLOSE_ZH})(?:说|觉得|认为|总说|一直说|老说|跟我说|告诉我|写道?|发消息说)[^。！？\n]{{0,12}}"
    rf"(?:没有{_TA}|{_TA}(?:不在了?|死了|消失了?))[^。！？\n]{{0,6}}(?:会)?(?:更好|更轻松|过得更好)",
    rf"(?:{_TA}|{_CLOSE_ZH})[^。！？\n我]{{0,6}}(?:说|觉得|认为)自己(?:是|就是|只是)?[^。！？\n]{{0,6}}(?:负担|累赘|多余的?人?)",
    r"(?:想|要|打算|准备)(?:要)?(?:永远)?离开这个世界", r"想(?:要)?一了百了|一了百了算了",
    r"(?:说|跟我|跟我们|跟大家|发了?)[^。！？\n]{0,4}永别",
    # 把东西都送人了
    r"把(?:自己|她|他)?(?:的)?(?:东西|心爱的[^。，,]{0,4}|宝贝|珍藏|收藏)[^。，,]{0,6}(?:都|全|全部)(?:送人|送给|分给|送掉|送出去)",
)
_DISTRESS_OTHER = _rx(rf"\b(?:kill|hurt|harm|cut|burn|starv)\w* {_SELVES}\b", r"\btak\w+ (?:his|her|their) (?:own )?life\b",
                      r"\b(?:wants?|wanting|going) to (?:die|end it|disappear|vanish)\b", r"\bend(?:ing)? it all\b",
                      r"\b(?:doesn'?t|does not|don'?t|didn'?t) (?:want|wanna) to (?:live|be alive|be here|exist|wake up)\b",
                      r"\b(?:better off|rather be) dead\b", r"\brather die\b", r"\b(?:not|never) wake up\b",
                      r"\bgoodbye (?:message|post|letter|note|text)s?\b", r"\bjump(?:ing|ed)? (?:off|from|in front of)\b",
                      r"\bin front of a (?:train|bus|car)\b", r"\b(?:pills|tablets|meds)\b.{0,40}\b(?:saved|stockpil\w*|hoard\w*|took a handful)\b",
                      r"\boverdos\w*\b", r"\bself[- ]?harm\w*\b", r"\bsuicid\w*\b",
                      r"\b(?:touch|abus|molest|groom)\w* (?:him|her|them)\b", r"\bhits? (?:her|him|them)\b", r"\bbruises?\b",
                      r"\blocks? (?:him|her|them) (?:in|up)\b", *_PASSIVE_OTHER,
                      r"去死", r"卧轨", r"跳楼", r"跳下去", r"跳河", r"割腕", r"割自己", r"自残", r"自杀", r"不想活", r"活够了",
                      r"吃了一把.{0,4}药", r"攒.{0,6}药", r"拖累", r"告别", r"想消失", r"(?:打|摸)(?:她|他)", r"淤青", r"锁在",
                      *_PASSIVE_OTHER_ZH)
_SOMEONE_CLOSE = _rx(rf"\b{_CLOSE_EN}\b", r"\b\d{1,2}[- ](?:year|yr)s?[- ]old\b", _CLOSE_ZH)
_FIRST_PERSON_DANGER = _rx(r"\bI(?:'m| am)? (?:want|going|plan(?:ning)?) to (?:die|kill myself|end (?:it|my life))\b",
                           r"\bkill(?:ing)? myself\b", r"\b(?:hurt|cut|harm)(?:ing)? myself\b",
                           r"\bI (?:\w+ )?(?:wanted|wish(?:ed)?) to (?:die|disappear|not exist)\b", r"\bif i (?:was|were) gone\b",
                           r"\bbetter off without me\b", r"\bI(?:['’]m| am) (?:just |such )?an? burden\b",
                           r"我(?:也|真的|就)?(?:想死|不想活|想自杀|想消失|想结束|想伤害自己)", r"没有我会",
                           r"我(?:觉得|就是|只是)?(?:自己)?(?:是)?(?:大家的|家里的|所有人的)?(?:负担|累赘)")
_FIRST_PERSON = _rx(r"\bI\b", r"\bmy\b", r"\bme\b", r"我")


@dataclass(frozen=True)
class Cue:
    name: str
    pattern: re.Pattern[str]
    scale: float  # hits at which the feature saturates


CUES: tuple[Cue, ...] = (
    Cue("roleplay_template", _ROLEPLAY, 2),
    Cue("instruction_override", _OVERRIDE, 1),
    Cue("refusal_suppression", _REFUSAL_SUPPRESSION, 2),
    Cue("fiction_frame", _FICTION, 2),
    Cue("code_wrapper", _CODE, 2),
    Cue("encoding_talk", _ENCODING_TALK, 1),
    Cue("word_game", _WORD_GAME, 2),
    Cue("acrostic", _ZH_ACROSTIC, 1),
    Cue("riddle", _ZH_RIDDLE, 1),
    Cue("character_split_game", _ZH_CHAR_SPLIT, 1),
    Cue("distress_strong", _DISTRESS_STRONG, 1),
    Cue("distress_weak", _DISTRESS_WEAK, 3),
    Cue("distress_other", _DISTRESS_OTHER, 1),
    Cue("opinion", _OPINION, 2),
)

UNREADABLE_ENCODINGS = frozenset({"base64", "hex", "rot13", "reversed", "leetspeak"})
DECODE_METHODS = ("unicode_normalised", "base64", "hex", "rot13", "reversed", "leetspeak", "char_split", "radical_split",
                  "tag_separator", "doubled_chars", "acrostic")

FEATURE_NAMES: tuple[str, ...] = (
    tuple(c.name for c in CUES)
    + tuple(f"decoded_{m}" for m in DECODE_METHODS)
    + ("ascii_art", "multi_turn_list", "repetition", "length_log", "cjk_ratio", "question", "imperative",
       "first_person", "symbol_ratio")
)
ADVERSARIAL_FEATURES = frozenset(
    {"roleplay_template", "instruction_override", "refusal_suppression", "encoding_talk", "word_game", "acrostic",
     "riddle", "character_split_game", "ascii_art", "repetition"} | {f"decoded_{m}" for m in DECODE_METHODS}
)
DISTRESS_FEATURES = frozenset({"distress_strong", "distress_weak", "distress_other"})

# How much text the regex cues look at: attacks hide requests at the end, so take head and tail.
CUE_SCAN_CHARS = 40000


def _scan_text(text: str) -> str:
    if len(text) <= CUE_SCAN_CHARS:
        return text
    half = CUE_SCAN_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def _ascii_art(text: str) -> float:
    lines = [ln for ln in text.splitlines()[:400] if ln.strip()]
    if len(lines) < 1:
        return 0.0
    symbolic = 0
    for ln in lines:
        s = ln.strip()
        n_sym = sum(ch in "|-_/\\#*=+<>^~`.:'[](){}" for ch in s)
        if len(s) >= 8 and n_sym / len(s) >= 0.45:
            symbolic += 1
    boxed = len(re.findall(r"\|-?.-?\|", text[:20000]))
    return min(1.0, symbolic / 3 + boxed / 8)


def _repetition(text: str) -> float:
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) > 10]
    if len(lines) < 4:
        return 0.0
    return min(1.0, (1 - len(set(lines)) / len(lines)) * 1.5)


@dataclass
class FeatureResult:
    vector: np.ndarray
    signals: list[RiskSignal]
    views: DecodedViews

    def value(self, name: str) -> float:
        return float(self.vector[FEATURE_NAMES.index(name)])


def extract(text: str) -> FeatureResult:
    """Feature vector, explanatory signals and decoded views for one text."""
    scan = _scan_text(text)
    vec = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    signals: list[RiskSignal] = []
    i = 0
    for cue in CUES:
        hits = [m.group(0) for _, m in zip(range(8), cue.pattern.finditer(scan), strict=False)]
        val = min(1.0, len(hits) / cue.scale)
        vec[i] = val
        if hits:
            kind = "distress" if cue.name.startswith("distress") else ("form" if cue.name in ("fiction_frame", "code_wrapper", "opinion") else "attack")
            signals.append(RiskSignal(name=f"{kind}:{cue.name}", detail=", ".join(dict.fromkeys(h.strip()[:30] for h in hits))[:120], weight=round(val, 3)))
        i += 1
    views = decode_views(text)
    methods = {m for m, _ in views.views}
    for m in DECODE_METHODS:
        vec[i] = 1.0 if m in methods else 0.0
        if m in methods:
            shown = next(t for mm, t in views.views if mm == m)
            signals.append(RiskSignal(name=f"obfuscation:{m}", detail=shown[:80], weight=1.0))
        i += 1
    art = _ascii_art(scan)
    rep = _repetition(scan)
    n_chars = max(1, len(text))
    cjk = len(_CJK.findall(scan[:5000])) / max(1, min(len(scan), 5000))
    stripped = scan.strip()
    first_line = stripped.splitlines()[0] if stripped else ""
    extra = {
        "ascii_art": art,
        "multi_turn_list": min(1.0, len(_MULTI_TURN.findall(scan)) / 4),
        "repetition": rep,
        "length_log": min(1.0, math.log10(n_chars) / 5),
        "cjk_ratio": cjk,
        "question": 1.0 if _QUESTION.search(stripped[:300]) else 0.0,
        "imperative": 1.0 if (_IMPERATIVE_EN.match(first_line) or _IMPERATIVE_ZH.match(first_line)) else 0.0,
        "first_person": min(1.0, len(_FIRST_PERSON.findall(scan[:2000])) / 3),
        "symbol_ratio": sum(not ch.isalnum() and not ch.isspace() for ch in scan[:5000]) / max(1, min(len(scan), 5000)),
    }
    for name in FEATURE_NAMES[i:]:
        vec[i] = float(extra[name])
        i += 1
    if art >= 0.34:
        signals.append(RiskSignal(name="obfuscation:ascii_art", detail="text drawn with symbols", weight=round(art, 3)))
    if rep >= 0.5:
        signals.append(RiskSignal(name="attack:repetition", detail="many repeated lines (flooding)", weight=round(rep, 3)))
    return FeatureResult(vector=vec, signals=signals, views=views)


def interaction_form(text: str) -> str:
    """declarative | inquiry | directive, from surface form (the same rules in both languages)."""
    stripped = normalise(text).strip()
    if not stripped:
        return "inquiry"
    first = stripped.splitlines()[0]
    if _IMPERATIVE_EN.match(first) or _IMPERATIVE_ZH.match(first):
        return "directive"
    if _QUESTION.search(stripped[:300]):
        return "inquiry"
    if re.match(r"^\s*(?:i need|i want|i'd like|我想要|我需要|我要)", first, re.IGNORECASE):
        return "directive"
    return "declarative"


# --- hashed word / character n-grams -------------------------------------------------------------
NGRAM_BUCKETS = 2048
_WORD = re.compile(r"[a-z]+")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def ngram_tokens(text: str) -> list[str]:
    """English word unigrams + bigrams and Chinese character unigrams + bigrams (lower-cased)."""
    t = text[:4000].lower()
    w = _WORD.findall(t)
    c = _HAN.findall(t)
    return w + [f"{a}_{b}" for a, b in zip(w, w[1:], strict=False)] + c + [a + b for a, b in zip(c, c[1:], strict=False)]


def ngram_vector(text: str, buckets: int = NGRAM_BUCKETS) -> np.ndarray:
    """Binary presence of hashed n-grams (crc32, stable across runs and platforms)."""
    import zlib

    v = np.zeros(buckets, dtype=np.float32)
    for tok in ngram_tokens(text):
        v[zlib.crc32(tok.encode("utf-8")) % buckets] = 1.0
    return v


def about_someone_else(text: str) -> bool:
    """A worried parent, friend or teacher telling of someone else's danger ("my sister has been cutting
    herself"), not the writer's own: the reply then helps the helper (what to say, what to do) instead
    of speaking to them as the one at risk."""
    scan = _scan_text(text)
    return bool(_DISTRESS_OTHER.search(scan) and _SOMEONE_CLOSE.search(scan)
                and not _FIRST_PERSON_DANGER.search(scan))
